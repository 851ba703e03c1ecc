//! PLACEHOLDER, replaced in this session: the sled backend.

use std::path::Path;

use moodb_engine::StorageError;

use crate::BackendOptions;

/// Not built yet.
pub enum SledBackend {}

impl SledBackend {
    pub fn open(_dir: &Path, _options: &BackendOptions) -> Result<Self, StorageError> {
        Err(StorageError::InvalidInput(
            "the sled backend is not built yet".into(),
        ))
    }
}

impl moodb_engine::Backend for SledBackend {
    fn name(&self) -> &'static str {
        match *self {}
    }
    fn recover(&mut self) -> Result<moodb_engine::Recovered, StorageError> {
        match *self {}
    }
    fn append(
        &mut self,
        _: &[moodb_engine::LogEntry],
    ) -> Result<moodb_engine::AppendReport, StorageError> {
        match *self {}
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        match *self {}
    }
    fn begin_checkpoint(
        &mut self,
        _: moodb_engine::Lsn,
    ) -> Result<Option<Box<dyn moodb_engine::CheckpointJob>>, StorageError> {
        match *self {}
    }
    fn checkpoint_finished(&mut self, _: &moodb_engine::CheckpointReport) {
        match *self {}
    }
    fn status(&self) -> moodb_engine::BackendStatus {
        match *self {}
    }
}
