"""The control plane: CCFaaS, VaaS and the S3 streamer as Lambda handlers.

The same handlers run behind API Gateway in AWS and behind ``local/``'s
adapter on one machine; they cannot tell which.
"""
