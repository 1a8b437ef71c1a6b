//! State table adapters (being written)
