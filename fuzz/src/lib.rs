//! The checks run by MooDB's fuzz targets, one function per target, in [`checks`].

pub mod checks;
