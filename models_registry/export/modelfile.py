"""An Ollama `Modelfile` beside a GGUF: the prompt template of our record format, stop tokens, sampling."""

from __future__ import annotations

import os
from pathlib import Path

import gguf

from corpus import tags
from models_registry.export.safetensors_export import TEMPERATURE, TOP_K

# The start of a serialized record, as training.hrm.generate.task_prompt cuts it: Ollama's
# `.System` is the repository ("owner/name"), `.Prompt` the PR title; the model goes on with its plan.
TEMPLATE = (
    f"{tags.REPO}{{{{ if .System }}}} {{{{ .System }}}}{{{{ end }}}}\n"
    f"{tags.PR_TITLE} {{{{ .Prompt }}}}\n{tags.PR_BODY}\n\n{tags.PLAN}\n"
)
# Done (`</CODE>`), the controller giving up on an attempt (`<REFINE>`), end of record.
STOP_TOKENS = (tags.CODE_END, tags.REFINE, "</s>")


def write_modelfile(
    gguf_path: Path | str, out_path: Path | str, *, temperature: float = TEMPERATURE, top_k: int = TOP_K
) -> Path:
    """Write the Modelfile at `out_path` (`ollama create NAME -f out_path`); FROM is relative when the
    GGUF sits in the same folder, so the pair can be moved together."""
    gguf_path, out_path = Path(gguf_path).resolve(), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if gguf_path.parent == out_path.parent.resolve():
        source = f"./{gguf_path.name}"
    else:
        source = str(gguf_path)
    lines = [f"FROM {source}", f'TEMPLATE """{TEMPLATE}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in STOP_TOKENS]
    lines += [
        f"PARAMETER temperature {temperature:g}",
        f"PARAMETER top_k {top_k}",
        f"PARAMETER num_ctx {context_length(gguf_path)}",
    ]
    temporary = out_path.with_name(f".{out_path.name}.partial-{os.getpid()}")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, out_path)
    return out_path


def context_length(gguf_path: Path) -> int:
    """`<arch>.context_length` of the GGUF: the longest sequence the model was trained on."""
    reader = gguf.GGUFReader(gguf_path)
    arch_field = reader.fields["general.architecture"]
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    field = reader.fields[f"{arch}.context_length"]
    return int(field.parts[field.data[0]][0])
