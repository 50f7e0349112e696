#!/usr/bin/env python3
"""Zips BINARY as an executable `bootstrap`, the layout of a provided.al2023 function
package (what `cargo lambda build --output-format zip` writes).

Usage: zip-bootstrap.py BINARY ZIP    (tests/run.sh packs the debug binaries this way)
"""
import os
import sys
import zipfile

binary, target = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
info.external_attr = 0o755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as src, zipfile.ZipFile(target, "w") as z:
    z.writestr(info, src.read())
