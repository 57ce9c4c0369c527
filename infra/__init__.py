"""The AWS deployment: a CDK app (``cdk.json`` runs ``infra.app``). Imported at synth time only."""
