/// What the driver-protocol tests need beyond .NET: python3 for examples/drivers/*.py (Debian's
/// package, installed as build/Etcd.fsx installs Go).
module Drivers

#load "Shell.fsx"

open System
open Shell

/// python3 from Debian when missing: as root directly, otherwise through sudo.
let installPython () =
    if onPath "python3" then
        Ok()
    elif not (onPath "apt-get") then
        Error "python3 is missing and there is no apt-get to install it"
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
            && sudo "env" (env @ [ "apt-get"; "install"; "-y"; "-q"; "--no-install-recommends"; "python3" ]) = 0
        then
            Ok()
        else
            Error "installing python3 with apt-get failed (root or passwordless sudo is needed)"
