//! calm-retry (under construction).
