"""The camera side: turn a video into YUV4MPEG2 and encrypt it for the VOD function."""
