"""Model-file frontends: each parses one file format into the float graph IR (graph/ir.py)."""
