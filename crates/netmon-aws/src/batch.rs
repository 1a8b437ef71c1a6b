//! batch (being written)
