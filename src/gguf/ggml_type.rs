//! ggml tensor types and their storage: elements per block and bytes per block, as ggml's own
//! type traits give them (llama.cpp b11434, `ggml/src/ggml.c`; checked against the linked ggml in
//! the tests), so a tensor's byte size is `elements / block_size × type_size`.

/// A ggml tensor type that a GGUF file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// ggml's enum value (`GGML_TYPE_*`), as stored in the file.
    pub id: u32,
    /// ggml's name (`q4_1`, `f16`, …).
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
}

/// (id, name, elements per block, bytes per block) for every type ggml b11434 stores.
const TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "f32", 1, 4),
    (1, "f16", 1, 2),
    (2, "q4_0", 32, 18),
    (3, "q4_1", 32, 20),
    (6, "q5_0", 32, 22),
    (7, "q5_1", 32, 24),
    (8, "q8_0", 32, 34),
    (9, "q8_1", 32, 36),
    (10, "q2_K", 256, 84),
    (11, "q3_K", 256, 110),
    (12, "q4_K", 256, 144),
    (13, "q5_K", 256, 176),
    (14, "q6_K", 256, 210),
    (15, "q8_K", 256, 292),
    (16, "iq2_xxs", 256, 66),
    (17, "iq2_xs", 256, 74),
    (18, "iq3_xxs", 256, 98),
    (19, "iq1_s", 256, 50),
    (20, "iq4_nl", 32, 18),
    (21, "iq3_s", 256, 110),
    (22, "iq2_s", 256, 82),
    (23, "iq4_xs", 256, 136),
    (24, "i8", 1, 1),
    (25, "i16", 1, 2),
    (26, "i32", 1, 4),
    (27, "i64", 1, 8),
    (28, "f64", 1, 8),
    (29, "iq1_m", 256, 56),
    (30, "bf16", 1, 2),
    (34, "tq1_0", 256, 54),
    (35, "tq2_0", 256, 66),
    (39, "mxfp4", 32, 17),
    (40, "nvfp4", 64, 36),
    (41, "q1_0", 128, 18),
    (42, "q2_0", 64, 18),
];
// Ids 4, 5, 31–33 and 36–38 were removed from ggml; files holding them are refused.

/// One past the largest id this build knows (`GGML_TYPE_COUNT` of llama.cpp b11434).
pub const TYPE_COUNT: u32 = 43;

impl GgmlType {
    /// The type with ggml id `id`, or `None` when this build does not know it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES
            .iter()
            .find(|t| t.0 == id)
            .map(|&(id, name, block_size, type_size)| GgmlType {
                id,
                name,
                block_size,
                type_size,
            })
    }

    /// The type named `name` (ggml's spelling, case-insensitive: `f16`, `q8_0`, `Q4_K`), as
    /// llama.cpp's `--cache-type-k` takes it.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TYPES
            .iter()
            .find(|t| t.1.eq_ignore_ascii_case(name))
            .and_then(|t| GgmlType::from_id(t.0))
    }

    /// Every type this build knows.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TYPES.iter().filter_map(|t| GgmlType::from_id(t.0))
    }

    /// Bytes of `elements` elements stored in a row, or `None` when `elements` is not a whole
    /// number of blocks (ggml refuses such a row) or the size overflows.
    pub fn row_bytes(&self, elements: u64) -> Option<u64> {
        if !elements.is_multiple_of(self.block_size) {
            return None;
        }
        (elements / self.block_size).checked_mul(self.type_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_matches_the_linked_ggml() {
        let mut known = 0;
        for id in 0..TYPE_COUNT {
            // SAFETY: ggml_blck_size and ggml_type_size read a static table indexed by the type
            // id; every id below GGML_TYPE_COUNT is a valid index (removed ids have zero sizes).
            let (block, size) = unsafe {
                (
                    llama_cpp_sys_2::ggml_blck_size(id as llama_cpp_sys_2::ggml_type),
                    llama_cpp_sys_2::ggml_type_size(id as llama_cpp_sys_2::ggml_type),
                )
            };
            match GgmlType::from_id(id) {
                Some(t) => {
                    known += 1;
                    assert_eq!(
                        (t.block_size as i64, t.type_size as usize),
                        (block, size),
                        "{}",
                        t.name
                    );
                }
                None => assert_eq!(size, 0, "ggml knows type {id}, this table does not"),
            }
        }
        assert_eq!(known, 35);
    }

    #[test]
    fn names_and_rows() {
        assert_eq!(GgmlType::from_name("Q4_K").map(|t| t.id), Some(12));
        assert_eq!(GgmlType::from_name("f16").map(|t| t.type_size), Some(2));
        assert_eq!(GgmlType::from_name("q4_2"), None);
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(TYPE_COUNT), None);
        let q8 = GgmlType::from_name("q8_0").expect("known");
        assert_eq!(q8.row_bytes(576), Some(612));
        assert_eq!(q8.row_bytes(577), None);
        assert_eq!(GgmlType::all().count(), 35);
    }
}
