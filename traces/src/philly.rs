//! Microsoft Philly (ATC'19): the derived job list and the raw cluster job log.
