FROM alpine
ARG NAME=world
RUN <<EOF
echo hello
echo $NAME
EOF
RUN <<-EOT sh -x
	echo tab-stripped by the shell
	EOT
RUN <<'SCRIPT'
#!/usr/bin/env sh
echo "$NAME stays for the script"
SCRIPT
RUN python3 <<PY1 && cat <<"PY2"
print(1)
PY1
raw $NAME
PY2
COPY <<CONF <<-'RAW' /etc/app/
name=$NAME
CONF
		literal=$NAME
	RAW
COPY --chmod=0755 <<EOF /usr/local/bin/hello
#!/bin/sh
echo hi
EOF
# expect: run[0]=["/bin/sh","-c","echo hello\necho $NAME\n"]
# expect: run[1]=["/bin/sh","-c","<<-EOT sh -x\n\techo tab-stripped by the shell\nEOT"]
# expect: run[2]=["/bin/sh","-c","/dev/pipes/SCRIPT"]
# expect: run[3]=["/bin/sh","-c","python3 <<PY1 && cat <<\"PY2\"\nprint(1)\nPY1\nraw $NAME\nPY2"]
# expect: copy[0].inline=[["CONF","name=world\n"],["RAW","literal=$NAME\n"]]
