<#
.SYNOPSIS
    Runs the lastro service "@@service" as a Windows service with NSSM: install, start, stop, restart,
    update (a new release without refusing requests), remove, status.

.DESCRIPTION
    Written by `lastro deploy nssm` from the service's settings. Run it in PowerShell as Administrator,
    with nssm.exe (2.24) on the PATH or given with -Nssm, from anywhere: every path comes from -AppDirectory.

    The service runs `lastro serve @@target` in AppDirectory, with its settings passed by NSSM
    (AppEnvironmentExtra, stored in the registry, readable by administrators). The signing key is made
    once, at the first install, and kept by every later one. The commands this script runs itself
    (`lastro db upgrade`, `lastro drain`, `lastro reload`) get the same settings and directory.

.EXAMPLE
    .\deploy.ps1 -Action install -Workers 2 -Port 8000
    Migrates the database, installs the service with 2 workers on port 8000 and starts it.

.EXAMPLE
    .\deploy.ps1 -Action update
    After the new code is in AppDirectory: migrates, then replaces the workers one by one (`lastro reload`).
#>
[CmdletBinding()]
param(
    [ValidateSet('install', 'start', 'stop', 'restart', 'update', 'remove', 'status')]
    [string]$Action = 'install',
    # Worker processes: a number, or auto (one per core, at most 4 on SQLite).
    [ValidatePattern('^(auto|[1-9][0-9]*)$')]
    [string]$Workers = '@@workers',
    [ValidateRange(1, 65535)]
    [int]$Port = @@port,
    # The address to listen on: 127.0.0.1 behind a proxy on this machine, 0.0.0.0 to be reached from others.
    [string]$ListenAddress = '@@host',
    [string]$ServiceName = '@@service',
    [string]$AppDirectory = '@@directory',
    [string]$Nssm = 'nssm.exe',
    # Seconds between `lastro drain` (ready answers 503) and the stop: how long a balancer that polls
    # /health/ready takes to stop sending. 0 without a balancer.
    [ValidateRange(0, 600)]
    [int]$DrainSeconds = 10,
    # Rotated log files older than this many days are deleted at each start and update; NSSM keeps them all.
    [ValidateRange(1, 3650)]
    [int]$LogKeepDays = 14
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$Lastro = Join-Path $AppDirectory '.venv\Scripts\lastro.exe'
$Python = Join-Path $AppDirectory '.venv\Scripts\python.exe'
$LogDirectory = Join-Path $AppDirectory 'logs'
$LogFile = Join-Path $LogDirectory "$ServiceName.log"
$ServeArguments = '@@serve_args'
$UpgradeArguments = @(@@upgrade_args)
# Milliseconds NSSM waits after Ctrl+C (then after each further stop method) before the next one and,
# last, ending the process tree: GRACEFUL_TIMEOUT (@@graceful_timeout s) for the requests in flight, plus
# @@shutdown_margin s for the application's shutdown.
$StopMilliseconds = @@stop_milliseconds
$ReadyUrl = "http://127.0.0.1:$Port/health/ready"
if ($ListenAddress -notin @('0.0.0.0', '::', '127.0.0.1')) {
    $ReadyUrl = "http://${ListenAddress}:$Port/health/ready"
}

function Invoke-Nssm {
    # NSSM writes UTF-16: read it as such. A failure stops the script with NSSM's own message (its
    # standard error is read as output: Windows PowerShell would otherwise stop at its first line).
    $ErrorActionPreference = 'Continue'
    $previous = [Console]::OutputEncoding
    [Console]::OutputEncoding = [System.Text.Encoding]::Unicode
    try {
        $output = & $Nssm @args 2>&1
        $code = $LASTEXITCODE
    }
    finally {
        [Console]::OutputEncoding = $previous
    }
    if ($code -ne 0) {
        throw "nssm $($args -join ' ') failed with exit code ${code}: $output"
    }
    $output
}

function Test-ServiceInstalled {
    $null -ne (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)
}

function Get-InstalledSettings {
    # The settings the installed service runs with, KEY=VALUE lines of AppEnvironmentExtra.
    $settings = [ordered]@{}
    if (Test-ServiceInstalled) {
        foreach ($line in (Invoke-Nssm get $ServiceName AppEnvironmentExtra)) {
            $name, $value = "$line".Split('=', 2)
            if ($value) {
                $settings[$name.Trim()] = $value
            }
        }
    }
    $settings
}

function New-SecretKey {
    # 48 random bytes from the operating system, URL-safe: what SECRET_KEY wants in production.
    & $Python -c 'import secrets; print(secrets.token_urlsafe(48))'
    if ($LASTEXITCODE -ne 0) {
        throw "$Python could not generate SECRET_KEY"
    }
}

function Get-ServiceSettings {
    # The settings written by `lastro deploy nssm`, with this run's -Workers and -Port; the signing key
    # of the installed service is kept, or a new one made. Edit values here, then `-Action restart`.
    $installed = Get-InstalledSettings
    $key = $installed['SECRET_KEY']
    if (-not $key) {
        $key = New-SecretKey
    }
    $settings = [ordered]@{
        ENVIRONMENT = 'production'
        SECRET_KEY = $key
        BIND = "${ListenAddress}:$Port"
        WORKERS = $Workers
@@settings
    }
    $settings
}

function Invoke-Lastro {
    # `lastro ARGS` in AppDirectory with the service's settings, as the service itself would run it.
    param([System.Collections.IDictionary]$Settings, [string[]]$Arguments)
    $saved = @{}
    foreach ($name in $Settings.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name, 'Process')
        [Environment]::SetEnvironmentVariable($name, [string]$Settings[$name], 'Process')
    }
    Push-Location $AppDirectory
    try {
        & $Lastro @Arguments
        if ($LASTEXITCODE -ne 0) {
            throw "lastro $($Arguments -join ' ') failed with exit code $LASTEXITCODE"
        }
    }
    finally {
        Pop-Location
        foreach ($name in $saved.Keys) {
            [Environment]::SetEnvironmentVariable($name, $saved[$name], 'Process')
        }
    }
}

function Wait-Ready {
    # /health/ready answers 200 once every worker serves; give up after the stop timeout and a minute.
    $deadline = (Get-Date).AddMilliseconds($StopMilliseconds + 60000)
    while ((Get-Date) -lt $deadline) {
        try {
            Invoke-RestMethod -Uri $ReadyUrl -TimeoutSec 2 | Out-Null
            Write-Host "$ServiceName is ready: $ReadyUrl"
            return
        }
        catch {
            Start-Sleep -Milliseconds 500
        }
    }
    throw "$ServiceName did not answer $ReadyUrl in time: see $LogFile"
}

function Remove-OldLogs {
    if (Test-Path $LogDirectory) {
        $limit = (Get-Date).AddDays(-$LogKeepDays)
        Get-ChildItem -Path $LogDirectory -Filter "$ServiceName-*.log" |
            Where-Object { $_.LastWriteTime -lt $limit } |
            Remove-Item
    }
}

function Install-LastroService {
    if (-not (Get-Command $Nssm -ErrorAction SilentlyContinue)) {
        throw "nssm.exe not found: put it on the PATH, or pass -Nssm C:\path\to\nssm.exe"
    }
    if (-not (Test-Path $Lastro)) {
        throw "$Lastro not found: create the virtualenv in $AppDirectory\.venv and install the application"
    }
    $settings = Get-ServiceSettings
    New-Item -ItemType Directory -Force -Path $LogDirectory | Out-Null
    # Migrate first: the service refuses to start on a database whose schema is behind.
    Invoke-Lastro -Settings $settings -Arguments $UpgradeArguments
    if (Test-ServiceInstalled) {
        Write-Host "$ServiceName is installed: its configuration is written again"
        Stop-LastroService
    }
    else {
        Invoke-Nssm install $ServiceName $Lastro | Out-Null
    }
    Invoke-Nssm set $ServiceName Application $Lastro | Out-Null
    Invoke-Nssm set $ServiceName AppParameters $ServeArguments | Out-Null
    # The working directory: --app-dir, relative paths of the settings and a .env file are read from it.
    Invoke-Nssm set $ServiceName AppDirectory $AppDirectory | Out-Null
    Invoke-Nssm set $ServiceName DisplayName "$ServiceName (lastro)" | Out-Null
    Invoke-Nssm set $ServiceName Description "lastro serve @@target" | Out-Null
    Invoke-Nssm set $ServiceName Start SERVICE_AUTO_START | Out-Null
    # Setting AppEnvironmentExtra replaces the whole list: every variable, every time.
    $pairs = @($settings.Keys | ForEach-Object { "$_=$($settings[$_])" })
    Invoke-Nssm set $ServiceName AppEnvironmentExtra @pairs | Out-Null
    # Logs (JSON lines in production) to one file, appended across restarts (4 = OPEN_ALWAYS), rotated
    # when the service starts and, while it runs, once the file reaches 10 MiB. A rotated file keeps the
    # name with a timestamp, e.g. @@service-20261205T101500.123.log.
    Invoke-Nssm set $ServiceName AppStdout $LogFile | Out-Null
    Invoke-Nssm set $ServiceName AppStderr $LogFile | Out-Null
    Invoke-Nssm set $ServiceName AppStdoutCreationDisposition 4 | Out-Null
    Invoke-Nssm set $ServiceName AppStderrCreationDisposition 4 | Out-Null
    Invoke-Nssm set $ServiceName AppRotateFiles 1 | Out-Null
    Invoke-Nssm set $ServiceName AppRotateOnline 1 | Out-Null
    Invoke-Nssm set $ServiceName AppRotateBytes 10485760 | Out-Null
    # Stop: Ctrl+C first (the supervisor and its workers share the console; each worker finishes its
    # requests within GRACEFUL_TIMEOUT), waiting longer than GRACEFUL_TIMEOUT at each step before the next.
    # The console must stay (AppNoConsole 0), or the Ctrl+C cannot reach the service.
    Invoke-Nssm set $ServiceName AppNoConsole 0 | Out-Null
    Invoke-Nssm set $ServiceName AppStopMethodSkip 0 | Out-Null
    Invoke-Nssm set $ServiceName AppStopMethodConsole $StopMilliseconds | Out-Null
    Invoke-Nssm set $ServiceName AppStopMethodWindow $StopMilliseconds | Out-Null
    Invoke-Nssm set $ServiceName AppStopMethodThreads $StopMilliseconds | Out-Null
    Invoke-Nssm set $ServiceName AppKillProcessTree 1 | Out-Null
    # Restart after a crash, 2 s apart; exit code 2 is a refused setting, which a restart cannot fix.
    Invoke-Nssm set $ServiceName AppExit Default Restart | Out-Null
    Invoke-Nssm set $ServiceName AppExit 2 Exit | Out-Null
    Invoke-Nssm set $ServiceName AppRestartDelay 2000 | Out-Null
    Invoke-Nssm set $ServiceName AppThrottle 10000 | Out-Null
    Start-LastroService
}

function Start-LastroService {
    Remove-OldLogs
    Invoke-Nssm start $ServiceName | Out-Null
    Wait-Ready
    # A drain left from a stop before this start would keep /health/ready at 503.
    Invoke-Lastro -Settings (Get-InstalledSettings) -Arguments @('drain', '--off')
}

function Stop-LastroService {
    if ((Get-Service -Name $ServiceName).Status -ne 'Running') {
        return
    }
    # Drain first: /health/ready turns 503 so that a balancer stops sending; requests still arriving are
    # served. Then the stop, which lets the requests in flight finish.
    Invoke-Lastro -Settings (Get-InstalledSettings) -Arguments @('drain')
    if ($DrainSeconds -gt 0) {
        Write-Host "$ServiceName drains for $DrainSeconds s"
        Start-Sleep -Seconds $DrainSeconds
    }
    Invoke-Nssm stop $ServiceName | Out-Null
    Write-Host "$ServiceName stopped"
}

function Update-LastroService {
    # A new release in AppDirectory, same settings: migrate, then replace the workers one at a time,
    # each new one ready before an old one stops (`lastro reload`): no request is refused. A new
    # worker that cannot start leaves the old ones serving; see the log. New settings need -Action restart.
    $settings = Get-InstalledSettings
    Remove-OldLogs
    Invoke-Lastro -Settings $settings -Arguments $UpgradeArguments
    Invoke-Lastro -Settings $settings -Arguments @('reload')
    Wait-Ready
}

switch ($Action) {
    'install' {
        Install-LastroService
    }
    'start' {
        Start-LastroService
    }
    'stop' {
        Stop-LastroService
    }
    'restart' {
        # New settings (-Workers, -Port, an edited value above) take effect only at a start.
        Install-LastroService
    }
    'update' {
        Update-LastroService
    }
    'remove' {
        if (Test-ServiceInstalled) {
            Stop-LastroService
            Invoke-Nssm remove $ServiceName confirm | Out-Null
            Write-Host "$ServiceName removed; its logs stay in $LogDirectory"
        }
    }
    'status' {
        Invoke-Nssm status $ServiceName
        try {
            Invoke-RestMethod -Uri $ReadyUrl -TimeoutSec 2 | Out-Null
            Write-Host "ready: $ReadyUrl"
        }
        catch {
            Write-Host "not ready: $ReadyUrl ($($_.Exception.Message))"
        }
    }
}
