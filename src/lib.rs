//! calm facade (under construction).
