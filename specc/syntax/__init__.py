"""The syntax stage: spec text → AST. Lark is used here and nowhere else."""

from specc.syntax.parser import grammar_path, parse, parse_file, read_source

__all__ = ["grammar_path", "parse", "parse_file", "read_source"]
