//! A data dir that was there before `up`: what `up` writes into it is its
//! owner's alone, and a dir that lets others in is named.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::{stop, Sandbox, Up};

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn up_in_a_dir_others_may_open_warns_and_keeps_its_files_to_its_owner() {
    let sandbox = Sandbox::new(true);
    let data = sandbox.data();
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .expect("a data dir made beforehand");
    assert_eq!(mode(&data), 0o755, "the umask of the test process");

    let up = Up::start(sandbox, &[]);
    up.wait_until_up().await;

    assert!(
        up.output().contains("warning: others may open"),
        "{}",
        up.output()
    );
    for made in ["secrets.json", "up.json", "logs", "logs/edge-api-0.log"] {
        let path = data.join(made);
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{made} is {:o}: others may read it",
            mode(&path)
        );
    }
    stop(up).await;
}
