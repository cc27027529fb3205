# The whole test suite on Windows (PowerShell, Python 3.11+ as `py`): install into .venv, run it.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
if (-not (Test-Path .venv\Scripts\python.exe)) { py -3 -m venv .venv }
.venv\Scripts\python -m pip install --quiet -e ".[test]"
if (-not $env:KKTBRIDGE_TEST_POSTGRES) { $env:KKTBRIDGE_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test" }
$workers = if ($env:KKTBRIDGE_TEST_WORKERS) { $env:KKTBRIDGE_TEST_WORKERS } else { "2" }
.venv\Scripts\python -m pytest -n $workers @args
exit $LASTEXITCODE
