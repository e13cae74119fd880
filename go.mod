module github.com/kronfed/kronfed

go 1.26
