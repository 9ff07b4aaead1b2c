/// strace (Debian's package), which the replay tests record real system calls with: installed
/// with apt-get when missing, as Etcd.fsx installs Go.
module Strace

#load "Shell.fsx"

open System
open Shell

/// strace, from Debian, when missing: as root directly, otherwise through sudo.
let installStrace () =
    if onPath "strace" then
        Ok()
    elif not (onPath "apt-get") then
        Error "strace is missing and there is no apt-get to install it"
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
            && sudo "env" (env @ [ "apt-get"; "install"; "-y"; "-q"; "--no-install-recommends"; "strace" ]) = 0
        then
            Ok()
        else
            Error "installing strace with apt-get failed (root or passwordless sudo is needed)"
