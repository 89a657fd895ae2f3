@echo off
rem Completion of `kubectl milvus ...` on Windows (kubectl 1.26 or later). kubectl looks up
rem kubectl_complete-milvus on the PATH (with any extension of PATHEXT, so this .cmd file), runs it
rem with the words typed after `milvus` plus the word being completed, and reads one candidate per
rem line and a final line of a colon and the directive: kubectl-milvus.exe answers that itself
rem (`__complete`). Copy this file next to kubectl-milvus.exe, e.g. into .krew\bin in your user
rem profile for a krew install; it runs the kubectl-milvus.exe in its own directory, else the one
rem on the PATH.
setlocal
set "plugin=%~dp0kubectl-milvus.exe"
if not exist "%plugin%" set "plugin=kubectl-milvus.exe"
"%plugin%" __complete %*
exit /b %ERRORLEVEL%
