//! kam — a batch engine for Key Account Management.
//!
//! The modules follow the data flow of a run:
//!
//! 1. [`import`] reads a workbook (xlsx, xlsm, xlsb, xls, ods) into
//! 2. [`model`], the typed dataset (accounts, transactions, contacts, activities, tenders,
//!    managers, plans) with every row's origin and the rejects;
//! 3. [`rules`] and [`score`] decide who is key and judge each KAM;
//! 4. [`report`] renders plans, reviews and the portfolio summary;
//! 5. [`output`] writes the results into a temporary folder renamed into place;
//!
//! with [`sample`] generating synthetic workbooks and [`cli`] on top.

pub mod cli;
pub mod diag;
pub mod error;
pub mod expr;
pub mod import;
pub mod model;
pub mod output;
pub mod panics;
pub mod report;
pub mod rules;
pub mod sample;
pub mod score;

pub use error::{Error, Result};

/// The embedded sample workbook (`samples/kam-sample.xlsx`), used when `kam run` gets no file.
pub const SAMPLE_WORKBOOK: &[u8] = include_bytes!("../samples/kam-sample.xlsx");
/// The name under which the embedded sample appears in messages and reports.
pub const SAMPLE_NAME: &str = "kam-sample.xlsx (embedded)";
