//! Microsoft ITP traces (ElasticFlow, ASPLOS'23).
