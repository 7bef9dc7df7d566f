"""A small mutation tester for certsms' core: Python *and* the Lua scripts.

``make mutation`` (``python -m tools.mutation``) copies the source tree to a scratch
directory, applies one mutant at a time to a module (or a Lua script, or the Lua
embedded in a Python string), runs that module's own test file, and reports per
module how many mutants the tests killed. See docs/testing.md.
"""
