/// strace (Debian's package), which the replay tests record real system calls with, and python3,
/// which their live workload is written in: installed with apt-get when missing, as Etcd.fsx
/// installs Go.
module Strace

#load "Shell.fsx"

open System
open Shell

/// strace and python3, from Debian, when missing: as root directly, otherwise through sudo.
let installStrace () =
    let missing =
        [ "strace", "strace"; "python3", "python3" ]
        |> List.filter (fun (program, _) -> not (onPath program))
        |> List.map snd

    if missing.IsEmpty then
        Ok()
    elif not (onPath "apt-get") then
        Error $"""{String.Join(" and ", missing)} missing and there is no apt-get to install them"""
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
            && sudo "env" (env @ [ "apt-get"; "install"; "-y"; "-q"; "--no-install-recommends" ] @ missing) = 0
        then
            Ok()
        else
            Error
                $"""installing {String.Join(" and ", missing)} with apt-get failed (root or passwordless sudo is needed)"""
