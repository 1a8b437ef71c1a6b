//! netmon-probe
