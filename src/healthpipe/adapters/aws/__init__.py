"""The AWS runtime's adapters: S3, DynamoDB, EventBridge, SES and CloudWatch EMF.

Only modules in this package import boto3/botocore. Each module that calls AWS declares
`IAM_ACTIONS`, exactly the actions its calls need; Terraform grants each Lambda function the
union over the adapters it uses (see `healthpipe.lambdas.FUNCTIONS`).
"""
