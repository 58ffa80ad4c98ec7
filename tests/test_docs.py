"""The design document lives in the repository and stays true: the README links it, and every
path in its layer map exists (lines marked "planned" describe work not yet landed)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"


def test_readme_links_the_design_document():
    readme = (ROOT / "README.md").read_text()
    assert "docs/design.md" in readme and "../shared" not in readme


def test_layer_map_paths_exist():
    text = DESIGN.read_text()
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    missing, folder = [], ""
    for line in block.splitlines():
        head, _, rest = line.partition("  ")
        rest = rest.split("planned", 1)[0]  # what follows "planned" does not exist yet
        if head.strip():
            missing += [head.strip()] if not (ROOT / head.strip()).exists() else []
        folder = head.strip() or folder  # continuation lines name files of the folder above
        for name in re.findall(r"\b[\w./-]+\.(?:py|cpp|h|cu|cmake|sh|md)\b", rest):
            cands = [ROOT / name, ROOT / folder / name, *(ROOT / folder).rglob(Path(name).name)]
            if not any(c.exists() for c in cands):
                missing.append(f"{folder}{name}")
    assert not missing, f"docs/design.md names paths that do not exist: {missing}"
