//! Alibaba GPU cluster trace 2023 (openb; FGD, ATC'23): pods and nodes.
