//! runner (being written)
