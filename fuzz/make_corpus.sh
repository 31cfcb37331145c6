#!/bin/sh
# Regenerates the IDX seed corpus (fuzz/corpus/idx/) and the hand-made IDX regression inputs
# (tests/data/regressions/idx/). Needs only a POSIX shell, head and gzip. Usage:
#   fuzz/make_corpus.sh
#
# Seed corpus files are fuzz_idx inputs: one mode byte (see fuzz_idx.cpp; 00 = the rest is the
# file as it is, 01 = gzip the rest with level 0, 07 = level 9, 69 = level 0 with the last 4
# bytes of the trailer cut off) followed by the file. Regression inputs are the files readIdx
# reads, without a mode byte; crashes found by the fuzzer go there too, named after the bug.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/fuzz/corpus/idx
regress=$root/tests/data/regressions/idx
mkdir -p "$corpus" "$regress"

# bytes HH HH ...: the bytes with those hexadecimal values.
bytes() {
  for h in "$@"; do
    # shellcheck disable=SC2059 # the format is the escape itself
    printf "\\$(printf '%03o' "0x$h")"
  done
}
# u32 N: N as a big-endian 32-bit integer (0 <= N < 2^32).
u32() {
  bytes "$(printf '%02x' $(($1 >> 24 & 255)))" "$(printf '%02x' $(($1 >> 16 & 255)))" \
        "$(printf '%02x' $(($1 >> 8 & 255)))" "$(printf '%02x' $(($1 & 255)))"
}
# seq_bytes N: the bytes 0, 1, ..., N-1 (N <= 256).
seq_bytes() {
  i=0
  while [ "$i" -lt "$1" ]; do
    bytes "$(printf '%02x' "$i")"
    i=$((i + 1))
  done
}
# header D1 D2 ...: magic for unsigned bytes, the number of dimensions, the dimensions.
header() {
  bytes 00 00 08 "$(printf '%02x' $#)"
  for d in "$@"; do u32 "$d"; done
}
labels_5() { header 5; bytes 00 01 02 03 04; }
images_2x3x3() { header 2 3 3; seq_bytes 18; }

# --- seed corpus: mode byte + file ---------------------------------------------------------
{ bytes 00; labels_5; } >"$corpus/labels_1d_5"
{ bytes 00; images_2x3x3; } >"$corpus/images_3d_2x3x3"
{ bytes 00; header 4 2; bytes 00 ff 01 fe 02 fd 03 fc; } >"$corpus/images_2d_4x2"
{ bytes 00; header 2 3 3; seq_bytes 5; } >"$corpus/truncated_data"
{ bytes 00; bytes 00 00 08 03; u32 2; bytes 00; } >"$corpus/truncated_header"
{ bytes 00; images_2x3x3; bytes 2a; } >"$corpus/trailing_byte"
{ bytes 00; bytes 00 01 08 01; u32 1; bytes 00; } >"$corpus/wrong_magic"
{ bytes 00; bytes 00 00 0d 01; u32 1; bytes 00 00 00 00; } >"$corpus/wrong_type_float32"
{ bytes 00; bytes 00 00 08 00; } >"$corpus/zero_ndims"
{ bytes 00; header 3 0 2; } >"$corpus/zero_dimension"
{ bytes 00; header 65536 65536 2; } >"$corpus/too_many_elements"
{ bytes 01; images_2x3x3; } >"$corpus/gzip_level0_images_3d"
{ bytes 07; labels_5; } >"$corpus/gzip_level9_labels_1d"
{ bytes 69; images_2x3x3; } >"$corpus/gzip_trailer_cut"
{ bytes 00; images_2x3x3 | gzip -n -9 -c; } >"$corpus/raw_gzip_file_images_3d"

# --- hand-made regression inputs: the files themselves --------------------------------------
# 2^31 elements (the limit, so the header is accepted) followed by 16 bytes of data.
{ header 2147483648; seq_bytes 16; } >"$regress/header_2pow31_elements_16_bytes.idx"
# A small gzip file that decompresses to a header of 32768 x 256 x 256 = 2^31 elements and
# 2 MiB of zeros: readIdx must stop at the end of the data instead of allocating 2 GiB.
{ header 32768 256 256; head -c 2097152 /dev/zero; } | gzip -n -9 -c \
  >"$regress/gzip_bomb_claims_2pow31_elements.idx.gz"
# 65536^4 = 2^64 wraps to 0 in 64-bit arithmetic: a naive reader accepts it with no data.
header 65536 65536 65536 65536 >"$regress/dims_product_wraps_64bit_to_0.idx"
# (2^32-1)^3 is about 2^96, past 64 bits even before the limit check.
{ header 4294967295 4294967295 4294967295; bytes 01 02 03; } \
  >"$regress/dims_product_overflows_64bit.idx"
# 255 dimensions of size 1 and one data byte: the largest header, and valid.
{ bytes 00 00 08 ff; i=0; while [ "$i" -lt 255 ]; do u32 1; i=$((i + 1)); done; bytes 07; } \
  >"$regress/max_ndims_255_valid.idx"
