//! calm-mock (under construction).
