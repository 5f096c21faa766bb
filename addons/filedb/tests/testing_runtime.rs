//! `kinesis::testing::TestRuntime` over filedb in a temporary directory, in
//! one line: persisted fields reach the directory, and the directory goes
//! with the runtime.

use kinesis::testing::TestRuntime;
use kinesis::{Component, Control, Persist};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize, Persist)]
struct Account {
    #[persist]
    owner: String,
    #[persist(encrypt)]
    secret: String,
}
impl Component for Account {}

#[tokio::test]
async fn a_file_store_in_a_temporary_directory_in_one_line() {
    let rt = TestRuntime::builder()
        .stores(kinesis_filedb::register)
        .temp_dir("file://")
        .start()
        .await
        .unwrap();
    let dir = rt.dir().unwrap().to_owned();
    assert_eq!(rt.url(), format!("file://{}", dir.display()));
    let account = rt
        .root()
        .add("account", Account { owner: "ada".into(), secret: "s3cret".into() })
        .await
        .unwrap();
    account.control(Control::Persist).await.unwrap();
    // The record is on disk, its secret encrypted under the test key.
    let bytes: Vec<u8> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("/root/account") && text.contains("ada"),
        "nothing stored in {}",
        dir.display()
    );
    assert!(!text.contains("s3cret"));
    assert!(rt.shutdown().await.clean);
    assert!(!dir.exists(), "{} is left", dir.display());
}
