//! netmon-embedded
