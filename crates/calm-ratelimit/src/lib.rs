//! calm-ratelimit (under construction).
