FROM busybox
RUN <<EOF
echo never ends
# error: Dockerfile:2: unterminated heredoc
