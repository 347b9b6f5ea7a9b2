//! [`Part`]: one file of a model (its bytes and their validated index),
//! and the views of its tensors.

use std::path::PathBuf;

use crate::error::Result;
use crate::format::{self, Index, Metadata, TensorInfo};
use crate::storage::Storage;
use crate::tensor::TensorView;

/// One file of a model: its bytes and their index.
#[derive(Debug)]
pub(crate) struct Part<'data> {
    pub(crate) storage: Storage<'data>,
    pub(crate) index: Index,
    pub(crate) path: Option<PathBuf>,
}

impl<'data> Part<'data> {
    /// Parses the header of `storage`.
    pub(crate) fn parse(storage: Storage<'data>) -> Result<Self> {
        let index = format::parse_header(storage.header(), storage.len())?;
        Ok(Part {
            storage,
            index,
            path: None,
        })
    }

    pub(crate) fn metadata(&self) -> Metadata<'_> {
        self.index.metadata(self.storage.header())
    }

    pub(crate) fn tensor_name(&self, i: usize) -> &str {
        self.index
            .tensors()
            .get(i)
            .map_or("", |t| t.name(self.storage.header()))
    }

    /// The view of tensor `info` of this part, which is part `part_no` of
    /// its model.
    pub(crate) fn view_of<'a>(&'a self, part_no: usize, info: &'a TensorInfo) -> TensorView<'a> {
        TensorView::new(
            &self.storage,
            self.path.as_deref(),
            part_no,
            &self.index,
            info,
        )
    }

    /// The view of this part's tensor `i`.
    pub(crate) fn view(&self, part_no: usize, i: usize) -> Option<TensorView<'_>> {
        let info = self.index.tensors().get(i)?;
        Some(self.view_of(part_no, info))
    }
}
