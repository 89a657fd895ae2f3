@echo off
rem Completion of `kubectl milvus ...` on Windows (kubectl 1.26 or later). kubectl looks up
rem kubectl_complete-milvus on the PATH (any extension of PATHEXT, so this .cmd), runs it with the
rem words typed after `milvus` plus the word being completed, and reads one candidate per line and
rem a final `:<directive>` line: the plugin answers that itself (`__complete`). Copy this file next
rem to kubectl-milvus.exe, e.g. into %USERPROFILE%\.krew\bin for a krew install.
setlocal
set "plugin=%~dp0kubectl-milvus.exe"
if not exist "%plugin%" set "plugin=kubectl-milvus.exe"
"%plugin%" __complete %*
exit /b %ERRORLEVEL%
