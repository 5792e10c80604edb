# Build the Windows desktop bundle: dist\galaxy-explorer\ with galaxy-explorer.exe (console,
# the command line) and galaxy-explorer-gui.exe (no console window, for the Start menu).
# NOT TESTED: written without a Windows machine to run it on.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#
# Needs Python 3.10+ from python.org (py launcher). To make an installer, point Inno
# Setup or NSIS at dist\galaxy-explorer\ and add a Start-menu shortcut to
# galaxy-explorer-gui.exe; the icon is resources\desktop\galaxy-explorer.ico.
$ErrorActionPreference = "Stop"
$Root = Resolve-Path (Join-Path $PSScriptRoot "..\..")
Set-Location $Root
$Venv = if ($env:BUILD_VENV) { $env:BUILD_VENV } else { Join-Path $Root "build\venv-windows" }
$Start = Get-Date
if (-not (Test-Path (Join-Path $Venv "Scripts\python.exe"))) { py -3 -m venv $Venv }
$Py = Join-Path $Venv "Scripts\python.exe"
& $Py -m pip install --quiet --upgrade pip
# the default torch wheel on Windows is the CPU build; for CUDA use PyTorch's own index
& $Py -m pip install --quiet torch "pyinstaller>=6.10" "pyinstaller-hooks-contrib>=2024.8"
& $Py -m pip install --quiet $Root
# run outside the source tree, so that PyInstaller takes the installed package
New-Item -ItemType Directory -Force (Join-Path $Root "build") | Out-Null
Push-Location (Join-Path $Root "build")
& $Py -m PyInstaller --noconfirm --clean --log-level WARN `
    --workpath (Join-Path $Root "build\pyinstaller-windows") --distpath (Join-Path $Root "dist") `
    (Join-Path $Root "packaging\galaxy-explorer.spec")
$Status = $LASTEXITCODE
Pop-Location
if ($Status -ne 0) { throw "PyInstaller failed" }
$Exe = Join-Path $Root "dist\galaxy-explorer\galaxy-explorer.exe"
& $Exe --version
$Minutes = [math]::Round(((Get-Date) - $Start).TotalMinutes, 1)
Write-Host "bundle: dist\galaxy-explorer ($Minutes min)"
