//! sns (being written)
