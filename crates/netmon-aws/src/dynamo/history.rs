//! History table adapter (being written)
