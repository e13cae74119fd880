module github.com/kronfed/kronfed/model/tokenizer/internal/gentables

go 1.26

require golang.org/x/text v0.3.8
