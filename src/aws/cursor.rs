//! Where a run keeps its cursor between runs: a tag on the janitor's own Lambda function, as
//! a trait and its `aws-sdk-lambda` implementation (`ListTags`, `TagResource`).
//!
//! A tag needs no other service: the binary already links the Lambda SDK, and another SDK
//! crate would not fit the 8 MiB bootstrap. The caller never lets a failed call fail the run.

use std::future::Future;

use super::functions::LambdaClient;
use super::AwsError;

/// Reads and writes one tag of a Lambda function.
pub trait CursorStore: Sync {
    /// The value of tag `key` on `function` (an unqualified function ARN); None when unset.
    fn load(
        &self,
        function: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;

    /// Sets tag `key` of `function` to `value`, leaving its other tags alone.
    fn save(
        &self,
        function: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

impl CursorStore for LambdaClient {
    async fn load(&self, function: &str, key: &str) -> Result<Option<String>, AwsError> {
        let out = self
            .sdk()
            .list_tags()
            .resource(function)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTags", e))?;
        Ok(out.tags.and_then(|mut tags| tags.remove(key)))
    }

    async fn save(&self, function: &str, key: &str, value: &str) -> Result<(), AwsError> {
        self.sdk()
            .tag_resource()
            .resource(function)
            .tags(key, value)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("TagResource", e))?;
        Ok(())
    }
}

/// The function's own ARN from the ARN it was invoked by, without a version or alias
/// qualifier (tags belong to the function, not to a version). None when `invoked` is not a
/// Lambda function ARN (local runtime emulators send placeholders).
pub fn function_arn(invoked: &str) -> Option<&str> {
    // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
    let parts: Vec<&str> = invoked.split(':').collect();
    let well_formed = matches!(parts.len(), 7 | 8)
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && parts.iter().all(|p| !p.is_empty());
    if !well_formed {
        return None;
    }
    let unqualified = parts[..7].iter().map(|p| p.len()).sum::<usize>() + 6;
    invoked.get(..unqualified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_arn_is_the_invoked_arn_without_its_qualifier() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-janitor";
        let cases = [
            (arn.to_owned(), Some(arn)),
            (format!("{arn}:live"), Some(arn)),
            (format!("{arn}:7"), Some(arn)),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:j".into(),
                Some("arn:aws-cn:lambda:cn-north-1:123456789012:function:j"),
            ),
            ("function-arn".into(), None),
            ("".into(), None),
            (format!("{arn}:"), None),
            ("arn:aws:sqs:us-east-1:123456789012:function:x".into(), None),
            ("arn:aws:lambda:us-east-1:123456789012:layer:x".into(), None),
            (format!("{arn}:live:extra"), None),
        ];
        for (invoked, expected) in cases {
            assert_eq!(function_arn(&invoked), expected, "{invoked}");
        }
    }
}
