//! Who besides a folder's owner may write into it: its mode bits and its
//! POSIX access ACL (`system.posix_acl_access`), whose named users and
//! groups `ls -l` does not show (their rights appear only folded into the
//! group bits, as the ACL mask). A folder another user can write lets
//! them plant links and rename entries, so the server and the working
//! trees ask this before trusting a folder.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who may write a folder besides its owner without it being refused.
#[derive(Debug, Clone, Copy)]
pub struct Writers {
    /// The user this process runs as (named in an ACL: fine).
    pub uid: u32,
    /// Which groups may also write.
    pub group: GroupRule,
}

/// Which groups may write besides the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRule {
    /// Any group.
    Any,
    /// Only this one (a server's own group).
    Only(u32),
    /// The groups this process is in (its effective group and its
    /// supplementary groups: a umask of 002, a team's shared folder),
    /// never a group of strangers.
    Mine,
}

impl Writers {
    /// This process's user; groups as given.
    pub fn me(group: GroupRule) -> Writers {
        Writers {
            uid: rustix::process::geteuid().as_raw(),
            group,
        }
    }

    /// This process's user and only its own (effective) group.
    pub fn me_and_my_group() -> Writers {
        Writers::me(GroupRule::Only(rustix::process::getegid().as_raw()))
    }

    fn allows_group(&self, gid: u32) -> bool {
        match self.group {
            GroupRule::Any => true,
            GroupRule::Only(g) => g == gid,
            GroupRule::Mine => my_groups().contains(&gid),
        }
    }
}

/// The effective and supplementary groups of this process.
fn my_groups() -> &'static [u32] {
    static GROUPS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut g: Vec<u32> = rustix::process::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        g.push(rustix::process::getegid().as_raw());
        g
    })
}

/// Takes away every right of "others" on the open file `f` if this user
/// owns it (a lock file made 0644 by an older build, which any user could
/// open and flock). Best effort: a file of someone else's stays as it is.
pub fn keep_from_others(f: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = f.metadata() else {
        return;
    };
    let mode = m.permissions().mode() & 0o7777;
    if m.uid() == rustix::process::geteuid().as_raw() && mode & 0o007 != 0 {
        let _ = rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(mode & !0o007));
    }
}

const ACL_NAME: &str = "system.posix_acl_access";
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_WRITE: u16 = 0x02;

/// Why someone else may write the folder `m` describes, whose ACL bytes
/// (`None`: it has none) are `acl`; `None` when nobody else may.
fn judge(m: &std::fs::Metadata, acl: Option<&[u8]>, w: Writers) -> Option<String> {
    let mode = m.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Some(format!("every user can write it (mode {mode:04o})"));
    }
    if mode & 0o020 != 0 && !w.allows_group(m.gid()) && acl.is_none() {
        return Some(format!(
            "group {} (not yours) can write it (mode {mode:04o})",
            m.gid()
        ));
    }
    let acl = acl?;
    // Linux xattr form: a 4-byte version, then 8-byte entries of tag,
    // permissions (u16 each) and id (u32), little-endian.
    let entries: Vec<(u16, u16, u32)> = acl
        .get(4..)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    let mask = entries
        .iter()
        .find(|e| e.0 == ACL_MASK)
        .map_or(0o7, |e| e.1);
    for &(tag, perm, id) in &entries {
        if perm & mask & ACL_WRITE == 0 {
            continue;
        }
        if tag == ACL_USER && id != w.uid {
            return Some(format!("user {id} can write it (by its ACL)"));
        }
        if tag == ACL_GROUP && !w.allows_group(id) {
            return Some(format!("group {id} can write it (by its ACL)"));
        }
    }
    // The owning group's own right, which the mask shows as the group bits.
    let group_obj_writes = entries
        .iter()
        .any(|e| e.0 == 0x04 && e.1 & mask & ACL_WRITE != 0);
    if group_obj_writes && !w.allows_group(m.gid()) {
        return Some(format!("group {} (not yours) can write it", m.gid()));
    }
    None
}

/// The ACL bytes `get` reads into a buffer (`None`: none): first into a
/// small one on the stack (this runs for every entry below `refs/` on
/// every command), into the largest an xattr can be only if it is bigger.
fn read_acl(get: impl Fn(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Option<Vec<u8>>> {
    let mut small = [0u8; 1024];
    match get(&mut small) {
        Err(rustix::io::Errno::RANGE) => {
            let mut big = vec![0u8; 65536];
            let r = get(&mut big).map_err(io::Error::from);
            acl_of(r, &big)
        }
        r => acl_of(r.map_err(io::Error::from), &small),
    }
}

fn acl_of(r: io::Result<usize>, buf: &[u8]) -> io::Result<Option<Vec<u8>>> {
    match r {
        Ok(n) => Ok(Some(buf[..n.min(buf.len())].to_vec())),
        // No ACL, or a filesystem without them.
        Err(e)
            if e.raw_os_error() == Some(rustix::io::Errno::NODATA.raw_os_error())
                || e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`judge`] of the folder at `path` (through a link at its end when
/// `follow`), whose metadata is `m`.
pub fn others_can_write(
    path: &Path,
    m: &std::fs::Metadata,
    follow: bool,
    w: Writers,
) -> io::Result<Option<String>> {
    let acl = read_acl(|buf| {
        if follow {
            rustix::fs::getxattr(path, ACL_NAME, buf)
        } else {
            rustix::fs::lgetxattr(path, ACL_NAME, buf)
        }
    })?;
    Ok(judge(m, acl.as_deref(), w))
}

/// [`others_can_write`] of an open folder.
pub fn others_can_write_fd(fd: impl AsFd, w: Writers) -> io::Result<Option<String>> {
    let file = std::fs::File::from(fd.as_fd().try_clone_to_owned()?);
    let m = file.metadata()?;
    let acl = read_acl(|buf| rustix::fs::fgetxattr(&file, ACL_NAME, buf))?;
    Ok(judge(&m, acl.as_deref(), w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_and_acls_are_judged() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let me = Writers::me(GroupRule::Any);
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(others_can_write(p, &m, false, me).unwrap(), None);
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let m = std::fs::metadata(p).unwrap();
        assert!(others_can_write(p, &m, false, me)
            .unwrap()
            .unwrap()
            .contains("every user"));
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o775)).unwrap();
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(others_can_write(p, &m, false, me).unwrap(), None);
        let foreign = Writers {
            uid: me.uid,
            group: GroupRule::Only(m.gid().wrapping_add(1)),
        };
        // The groups this process is in include the folder's here (made by
        // this process).
        assert_eq!(
            others_can_write(p, &m, false, Writers::me(GroupRule::Mine)).unwrap(),
            None
        );
        assert!(others_can_write(p, &m, false, foreign)
            .unwrap()
            .unwrap()
            .contains("not yours"));
        // An ACL naming another user with write (mask rwx): refused; with a
        // mask without write: not.
        let acl = |user_perm: u16, mask: u16| {
            let mut b = vec![2, 0, 0, 0];
            for (tag, perm, id) in [
                (0x01u16, 7u16, u32::MAX),
                (ACL_USER, user_perm, 4242),
                (0x04, 5, u32::MAX),
                (ACL_MASK, mask, u32::MAX),
                (0x20, 5, u32::MAX),
            ] {
                b.extend(tag.to_le_bytes());
                b.extend(perm.to_le_bytes());
                b.extend(id.to_le_bytes());
            }
            b
        };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let m = std::fs::metadata(p).unwrap();
        assert!(judge(&m, Some(&acl(7, 7)), me)
            .unwrap()
            .contains("user 4242"));
        assert_eq!(judge(&m, Some(&acl(7, 5)), me), None);
        assert_eq!(judge(&m, Some(&acl(5, 7)), me), None);
        // Truncated or empty ACL bytes are no entries (no panic).
        assert_eq!(judge(&m, Some(&[2, 0]), me), None);
        // The same ACL set on the folder for real (where the filesystem
        // has ACLs): read back and refused; `ls -l` would show 0775.
        match rustix::fs::setxattr(p, ACL_NAME, &acl(7, 7), rustix::fs::XattrFlags::empty()) {
            Ok(()) => {
                let m = std::fs::metadata(p).unwrap();
                let why = others_can_write(p, &m, false, me).unwrap().unwrap();
                assert!(why.contains("user 4242"), "{why}");
                let f = std::fs::File::open(p).unwrap();
                assert!(others_can_write_fd(&f, me).unwrap().is_some());
            }
            Err(e) => eprintln!("no ACLs here ({e}); the real-ACL part is skipped"),
        }
    }
}
