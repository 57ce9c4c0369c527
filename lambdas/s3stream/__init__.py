"""The S3 streamer: copies one S3 object into a Veracruz instance, never through anyone's disk."""
