"""The local demo: the SAM application of template.yaml on an embedded DynamoDB + SQS + SES (``make demo``)."""
