/// Debian's packages for what the tests need beyond .NET (Go and etcd's source for the peer,
/// strace and python3 for the driver and replay tests), installed with apt-get when missing, so
/// that a fresh machine needs nothing but the .NET SDK.
module Debian

#load "Shell.fsx"

open System
open Shell

/// Installs `packages` (none when empty): as root directly, otherwise through passwordless sudo.
let ensure (packages: string list) : Result<unit, string> =
    let names = String.Join(" and ", packages)

    if packages.IsEmpty then
        Ok()
    elif not (onPath "apt-get") then
        Error $"{names} missing and there is no apt-get to install them"
    else
        let sudo command args =
            if Environment.UserName = "root" then
                exec command args
            elif onPath "sudo" then
                exec "sudo" ("-n" :: command :: args)
            else
                1

        let env = [ "DEBIAN_FRONTEND=noninteractive" ]

        if
            sudo "env" (env @ [ "apt-get"; "update"; "-q" ]) = 0
            && sudo "env" (env @ [ "apt-get"; "install"; "-y"; "-q"; "--no-install-recommends" ] @ packages) = 0
        then
            Ok()
        else
            Error $"installing {names} with apt-get failed (root or passwordless sudo is needed)"
