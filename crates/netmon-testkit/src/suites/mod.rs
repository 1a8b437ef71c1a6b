//! Behavioural suites: one module per port; each adapter's tests call them.
