//! The QEMU command line, built from typed settings by small pure functions.
//!
//! Every VM is `qemu-system-x86_64 -kernel -initrd` with no firmware disk and no default
//! devices: serial 0 (the console) on QEMU's stdout, serial 1 (the agent's JSON Lines channel)
//! on one end of a socket pair QEMU inherits, a raw virtio-blk disk only when the scenario
//! asks for one, and QMP on another socket pair when a snapshot is saved or restored, also
//! inherited descriptors ([`Attached`]): nothing a VM uses has a name in
//! the file system, so nothing can be left behind. The kernel command line never carries
//! `mem=` (the guest would take it as a limit).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use rsslab_wire::Bytes;

/// The QEMU binary, overridable for tests and unusual hosts with `RSSLAB_QEMU`. Hand it to
/// duct as an `OsStr` (a `Path` would be taken relative to the working directory).
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("RSSLAB_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation: near-native speed.
    Kvm,
    /// Software emulation: every guest instruction translated; 10-50x slower, same memory
    /// behaviour.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Everything that varies between VMs.
#[derive(Debug, Clone)]
pub struct QemuCommand {
    pub binary: PathBuf,
    pub accel: Accel,
    /// Guest RAM.
    pub memory: Bytes,
    pub cpus: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// More words for the kernel command line (the fault hook of [`super::fault`]).
    pub kernel_args: Vec<String>,
    /// A snapshot to start from (`-incoming file:...`, see [`super::snapshot`]) instead of
    /// booting.
    pub incoming: Option<PathBuf>,
}

/// Descriptors QEMU inherits, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// A connected stream socket: serial 1, the channel.
    pub channel: RawFd,
    /// A raw ext4 image, attached as virtio-blk (`/dev/vda`), if any.
    pub disk: Option<RawFd>,
    /// A connected stream socket for QMP (QEMU's machine protocol), when a snapshot is saved
    /// or restored.
    pub qmp: Option<RawFd>,
}

/// The kernel command line: console on ttyS0, reboot at once on panic (QEMU then exits, since
/// it runs with `-no-reboot`), an oops is a panic (an infrastructure fault we retry), no
/// probing of hardware the VM does not have, and pressure stall information on (Debian builds
/// it off by default; the hello's `psi` feature says whether the guest has it).
pub fn kernel_cmdline(extra: &[String]) -> String {
    let base = [
        "console=ttyS0",
        "panic=-1",
        "oops=panic",
        "8250.nr_uarts=2",
        "i8042.noaux",
        "i8042.nokbd",
        "i8042.nopnp",
        "random.trust_cpu=on",
        "psi=1",
        "rdinit=/init",
    ];
    base.into_iter()
        .map(str::to_owned)
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine_args(accel: Accel) -> Vec<String> {
    match accel {
        Accel::Kvm => vec![
            "-machine".into(),
            "pc,accel=kvm".into(),
            "-cpu".into(),
            "host".into(),
        ],
        Accel::Tcg => vec!["-machine".into(), "pc,accel=tcg".into()],
    }
}

fn resource_args(memory: Bytes, cpus: u32) -> Vec<String> {
    let mib = memory.0.div_ceil(1 << 20);
    vec![
        "-m".into(),
        format!("{mib}M"),
        "-smp".into(),
        cpus.to_string(),
    ]
}

/// No display, no monitor, no default devices, exit instead of rebooting.
fn quiet_args() -> Vec<String> {
    [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]
    .map(String::from)
    .to_vec()
}

fn serial_args(channel: RawFd) -> Vec<String> {
    vec![
        "-serial".into(),
        "stdio".into(),
        "-chardev".into(),
        format!("socket,id=channel,fd={channel}"),
        "-serial".into(),
        "chardev:channel".into(),
    ]
}

/// QMP on its inherited socket.
fn monitor_args(qmp: Option<RawFd>) -> Vec<String> {
    let Some(qmp) = qmp else { return Vec::new() };
    vec![
        "-chardev".into(),
        format!("socket,id=qmp,fd={qmp}"),
        "-mon".into(),
        "chardev=qmp,mode=control".into(),
    ]
}

/// The disk by its inherited descriptor: QEMU opens `/dev/fd/N`, which works for a file that
/// has no name any more.
fn disk_args(disk: Option<RawFd>) -> Vec<String> {
    let Some(disk) = disk else { return Vec::new() };
    vec![
        "-drive".into(),
        format!("file=/dev/fd/{disk},if=virtio,format=raw,cache=unsafe"),
    ]
}

impl QemuCommand {
    /// The full argument list (without the binary).
    pub fn args(&self, attached: Attached) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        args.extend(machine_args(self.accel).into_iter().map(OsString::from));
        args.extend(
            resource_args(self.memory, self.cpus)
                .into_iter()
                .map(OsString::from),
        );
        args.extend(quiet_args().into_iter().map(OsString::from));
        args.push("-kernel".into());
        args.push(self.kernel.clone().into());
        args.push("-initrd".into());
        args.push(self.initrd.clone().into());
        args.push("-append".into());
        args.push(kernel_cmdline(&self.kernel_args).into());
        args.extend(
            serial_args(attached.channel)
                .into_iter()
                .map(OsString::from),
        );
        args.extend(disk_args(attached.disk).into_iter().map(OsString::from));
        args.extend(monitor_args(attached.qmp).into_iter().map(OsString::from));
        if let Some(state) = &self.incoming {
            args.push("-incoming".into());
            let mut uri = OsString::from("file:");
            uri.push(state);
            args.push(uri);
        }
        args
    }

    /// The command as one line, for logs and error messages.
    pub fn display(&self, attached: Attached) -> String {
        let mut line = self.binary.display().to_string();
        for arg in self.args(attached) {
            line.push(' ');
            let arg = arg.to_string_lossy();
            if arg.contains(' ') {
                line.push_str(&format!("'{arg}'"));
            } else {
                line.push_str(&arg);
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(accel: Accel) -> QemuCommand {
        QemuCommand {
            binary: "qemu-system-x86_64".into(),
            accel,
            memory: Bytes::mib(1024),
            cpus: 2,
            kernel: "/k/vmlinuz".into(),
            initrd: "/k/initrd.gz".into(),
            kernel_args: Vec::new(),
            incoming: None,
        }
    }

    const NO_DISK: Attached = Attached {
        channel: 7,
        disk: None,
        qmp: None,
    };

    #[test]
    fn tcg_command_has_console_on_stdio_and_channel_on_the_socket() {
        let line = command(Accel::Tcg).display(NO_DISK);
        assert!(line.contains("-machine pc,accel=tcg"), "{line}");
        assert!(line.contains("-m 1024M -smp 2"), "{line}");
        assert!(
            line.contains("-serial stdio -chardev socket,id=channel,fd=7 -serial chardev:channel"),
            "{line}"
        );
        assert!(!line.contains("-drive"), "{line}");
        assert!(!line.contains("-cpu host"), "{line}");
        assert!(line.contains("-no-reboot"), "{line}");
    }

    #[test]
    fn kvm_uses_the_host_cpu_and_a_disk_is_raw_virtio() {
        let line = command(Accel::Kvm).display(Attached {
            channel: 7,
            disk: Some(8),
            qmp: None,
        });
        assert!(line.contains("accel=kvm -cpu host"), "{line}");
        assert!(
            line.contains("-drive file=/dev/fd/8,if=virtio,format=raw"),
            "{line}"
        );
    }

    #[test]
    fn a_restore_loads_the_snapshot_file_and_speaks_qmp_on_its_socket() {
        let mut restore = command(Accel::Tcg);
        restore.incoming = Some("/cache/snapshots/k.vmstate".into());
        let line = restore.display(Attached {
            channel: 7,
            disk: None,
            qmp: Some(9),
        });
        assert!(
            line.ends_with(
                "-chardev socket,id=qmp,fd=9 -mon chardev=qmp,mode=control \
                 -incoming file:/cache/snapshots/k.vmstate"
            ),
            "{line}"
        );
        assert!(!command(Accel::Tcg).display(NO_DISK).contains("-mon"));
    }

    #[test]
    fn the_kernel_never_gets_a_memory_limit() {
        let cmdline = kernel_cmdline(&[]);
        assert!(!cmdline.contains("mem="), "{cmdline}");
        assert!(cmdline.contains("panic=-1"), "{cmdline}");
    }

    #[test]
    fn pressure_stall_information_is_switched_on() {
        let cmdline = kernel_cmdline(&[]);
        assert!(cmdline.split(' ').any(|word| word == "psi=1"), "{cmdline}");
    }

    #[test]
    fn extra_kernel_arguments_come_last() {
        let mut with_fault = command(Accel::Tcg);
        with_fault.kernel_args = vec!["rsslab.fault=hang@1000".into()];
        let line = with_fault.display(NO_DISK);
        assert!(
            line.contains("rdinit=/init rsslab.fault=hang@1000'"),
            "{line}"
        );
    }
}
