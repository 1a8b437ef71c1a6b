//! netmon-app
