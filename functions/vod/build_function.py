"""Build the VOD function's model and its function policy into build/functions/vod/.

    python functions/vod/build_function.py build/functions/vod [--cascade frontalface_default]

Writes ``cascade.bin`` (converted from OpenCV's cascade) and ``function.json``:
the function policy in the seed's shape, with the ``pi_hash`` of
``detector.wasm`` (which must already be in the folder) and of the model, ready
for ``POST /function``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cascade_tool  # noqa: E402

READ, WRITE, READ_WRITE = 24582, 534084, 550470
PROGRAM = "/program/detector.wasm"
MODEL = "/program_data/cascade.bin"


def function_policy(wasm: bytes, model: bytes, name: str = "vod") -> dict:
    return {
        "function": name,
        "debug": False,
        "enable_clock": True,
        "execution_strategy": "JIT",
        "max_memory_mib": 512,
        "data_files": [{"data_file": MODEL, "pi_hash": hashlib.sha256(model).hexdigest()}],
        "programs": [
            {
                "file_rights": [
                    {"file_name": "/program_data/", "rights": READ},
                    {"file_name": "/s3_app_input/", "rights": READ},
                    {"file_name": "/user_input/", "rights": READ},
                    {"file_name": "/output/", "rights": READ_WRITE},
                    {"file_name": "/program_internal/", "rights": READ_WRITE},
                    {"file_name": "stdout", "rights": WRITE},
                    {"file_name": "stderr", "rights": WRITE},
                ],
                "id": 0,
                "pi_hash": hashlib.sha256(wasm).hexdigest(),
                "program_file_name": PROGRAM,
            }
        ],
        "file_rights": [
            {"file_name": "/program/", "rights": WRITE},
            {"file_name": "/program_data/", "rights": WRITE},
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cascade", default="frontalface_default", help="an OpenCV cascade name")
    args = parser.parse_args()
    model = cascade_tool.convert(cascade_tool.opencv_cascade_path(args.cascade).read_text())
    (args.folder / "cascade.bin").write_bytes(model)
    wasm = (args.folder / "detector.wasm").read_bytes()
    (args.folder / "function.json").write_text(json.dumps(function_policy(wasm, model), indent=4) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
