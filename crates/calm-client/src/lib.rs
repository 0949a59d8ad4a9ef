//! calm-client (under construction).
