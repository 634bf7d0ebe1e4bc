"""`import "file.spec"`: constants and blocks from other files, cycles, duplicates."""

from __future__ import annotations

from pathlib import Path

MODEL = """
model m {
    input x: float[4]
    layers { stack(width) }
}
"""
LIBRARY = """
let width = 8
block stack(units) {
    dense(units, activation=relu)
    dense(units)
}
"""


def test_import_brings_constants_and_blocks(check):
    checked = check('import "lib/common.spec"\n' + MODEL, **{"lib/common.spec": LIBRARY})
    (block,) = checked.model.graph.nodes
    assert block.block == "stack" and block.args == {"units": 8}


def test_import_paths_are_relative_to_the_importing_file(check):
    # main imports lib/a.spec, which imports b.spec next to itself (lib/b.spec).
    checked = check('import "lib/a.spec"\n' + MODEL, **{
        "lib/a.spec": 'import "b.spec"\nlet width = base * 2\n',
        "lib/b.spec": LIBRARY.replace("let width = 8", "let base = 3"),
    })
    assert checked.model.graph.nodes[0].args == {"units": 6}


def test_missing_import(check):
    checked = check('import "nowhere.spec"\n' + MODEL)
    error = checked.error('cannot import "nowhere.spec"')
    assert error.span.line == 1 and "no such file" in error.message


def test_import_cycle(check):
    checked = check('import "a.spec"\n' + MODEL, **{
        "a.spec": 'import "b.spec"\n' + LIBRARY,
        "b.spec": 'import "a.spec"\nlet other = 1\n',
    })
    error = checked.error("import cycle")
    assert "a.spec -> b.spec -> a.spec" in error.message
    assert Path(error.span.file).name == "b.spec"
    # The chain of imports that led there, back to the file being checked.
    assert [Path(span.file).name for _, span in error.notes] == ["a.spec", "main.spec"]


def test_a_file_importing_itself(check):
    checked = check('import "main.spec"\n' + LIBRARY + MODEL)
    assert "import cycle: main.spec -> main.spec" in checked.error("import cycle").message


def test_duplicate_names_across_imports(check):
    checked = check('import "a.spec"\nimport "b.spec"\n' + MODEL, **{
        "a.spec": LIBRARY,
        "b.spec": "block stack(units) {\n    dense(units)\n}\n",
    })
    error = checked.error("`stack` is defined twice")
    assert Path(error.span.file).name == "b.spec"
    assert Path(error.notes[0][1].file).name == "a.spec"


def test_a_local_name_clashing_with_an_import(check):
    checked = check('import "a.spec"\nlet width = 4\n' + MODEL, **{"a.spec": LIBRARY})
    error = checked.error("`width` is defined twice")
    assert error.span.line == 2


def test_syntax_errors_in_an_imported_file_note_the_import(check):
    checked = check('import "a.spec"\n' + MODEL, **{"a.spec": "let width = (8\n"})
    error = checked.errors[0]
    assert Path(error.span.file).name == "a.spec" and "unexpected end of file" in error.message
    assert error.notes[0][0] == "imported from here" and error.notes[0][1].line == 1


def test_errors_inside_an_imported_block_point_into_its_file(check):
    checked = check('import "a.spec"\n' + MODEL, **{
        "a.spec": "let width = 8\nblock stack(units) {\n    dropout(units)\n}\n"})
    error = checked.error("invalid argument `rate`")
    assert Path(error.span.file).name == "a.spec" and error.span.line == 3
    assert Path(error.notes[0][1].file).name == "main.spec"


def test_models_of_imported_files_are_not_imported(check):
    checked = check('import "a.spec"\n' + MODEL, **{"a.spec": LIBRARY + MODEL})
    assert [m.name for m in checked.program.models] == ["m"]
