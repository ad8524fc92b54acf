//! A restricted reader of Python pickles as `torch.save` writes them: plain containers,
//! numbers, strings and tensors. Nothing is executed: a global other than the few that rebuild
//! tensors and ordered dicts refuses the file, naming what it would have called (a checkpoint
//! that pickles a class or a function can run code when PyTorch loads it).

use super::DType;

/// A tensor as the pickle describes it: a view into a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub dtype: DType,
    /// The storage's key (its entry `data/KEY` in a zip file).
    pub storage: String,
    /// Elements in the storage (as the pickle states it).
    pub storage_len: u64,
    /// Offset and strides in elements.
    pub offset: u64,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An allowed global, by its dotted name.
    Global(String),
    Storage {
        dtype: DType,
        key: String,
        len: u64,
    },
    Tensor(TensorRef),
}

/// The globals a state dict may name; anything else is refused unread.
const ALLOWED: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
];

fn storage_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "torch.FloatStorage" => DType::F32,
        "torch.HalfStorage" => DType::F16,
        "torch.BFloat16Storage" => DType::BF16,
        "torch.DoubleStorage" => DType::F64,
        "torch.LongStorage" => DType::I64,
        "torch.IntStorage" => DType::I32,
        "torch.ShortStorage" => DType::I16,
        "torch.CharStorage" => DType::I8,
        "torch.ByteStorage" => DType::U8,
        "torch.BoolStorage" => DType::Bool,
        _ => return None,
    })
}

enum Item {
    Value(Value),
    Mark,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u32, Value>,
}

fn refused(what: &str) -> String {
    format!(
        "the pickle calls {what}, which is neither a tensor nor a plain container; it was \
         refused without running it (save the state dict alone: torch.save(model.state_dict()))"
    )
}

/// Reads one pickle from the start of `bytes`; returns it and the bytes it took.
pub fn read(bytes: &[u8]) -> Result<(Value, usize), String> {
    let mut r = Reader {
        bytes,
        at: 0,
        stack: Vec::new(),
        memo: Default::default(),
    };
    let v = r.run()?;
    Ok((v, r.at))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or("the pickle is truncated")?;
        self.at += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let s = self.take(n)?;
        Ok(s.iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("the pickle is truncated")?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(s)
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Value(v));
    }

    fn pop(&mut self) -> Result<Value, String> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err("the pickle is malformed (stack underflow)".into()),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Item::Value(v)) => out.push(v),
                Some(Item::Mark) => break,
                None => return Err("the pickle is malformed (no mark)".into()),
            }
        }
        out.reverse();
        Ok(out)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err("the pickle is malformed (stack underflow)".into()),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let full = format!("{module}.{name}");
        if ALLOWED.contains(&full.as_str()) || storage_dtype(&full).is_some() {
            self.push(Value::Global(full));
            Ok(())
        } else {
            Err(refused(&full))
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = match self.stack.last() {
            Some(Item::Value(v)) => v.clone(),
            _ => return Err("the pickle is malformed (memo of a mark)".into()),
        };
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or("the pickle is malformed (unknown memo key)")?;
        self.push(v);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.take(1)?[0];
            match op {
                b'.' => return self.pop(),
                0x80 | 0x95 | b'(' | b'}' | b']' | b')' | b'N' | 0x88 | 0x89 => self.simple(op)?,
                b'J' | b'K' | b'M' | 0x8a | b'G' => self.number(op)?,
                b'X' | 0x8c | 0x8d | b'T' | b'U' | b'B' | b'C' | 0x8e => self.text(op)?,
                b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo_op(op)?,
                b'c' | 0x93 | b'Q' | b'R' | b'b' | 0x81 => self.call(op)?,
                _ => self.container(op)?,
            }
        }
    }

    /// Protocol framing, marks and empty containers.
    fn simple(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                self.take(1)?;
            }
            0x95 => {
                self.take(8)?;
            }
            b'(' => self.stack.push(Item::Mark),
            b'}' => self.push(Value::Dict(vec![])),
            b']' => self.push(Value::List(vec![])),
            b')' => self.push(Value::Tuple(vec![])),
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            _ => return Err(format!("the pickle is malformed (opcode 0x{op:02x})")),
        }
        Ok(())
    }

    /// Integers and floats.
    fn number(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.push(Value::Int(i64::from(v)))
            }
            b'K' => {
                let v = self.uint(1)?;
                self.push(Value::Int(v as i64))
            }
            b'M' => {
                let v = self.uint(2)?;
                self.push(Value::Int(v as i64))
            }
            0x8a => {
                let n = self.uint(1)? as usize;
                let v = self.long(n)?;
                self.push(Value::Int(v))
            }
            b'G' => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                self.push(Value::Float(f64::from_be_bytes(a)))
            }
            _ => return Err(format!("the pickle is malformed (opcode 0x{op:02x})")),
        }
        Ok(())
    }

    /// Strings and bytes.
    fn text(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => self.uint(4)?,
                    0x8c => self.uint(1)?,
                    _ => self.uint(8)?,
                } as usize;
                let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                self.push(Value::Str(s))
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'T' | b'B' => self.uint(4)?,
                    0x8e => self.uint(8)?,
                    _ => self.uint(1)?,
                } as usize;
                let s = self.take(n)?.to_vec();
                // Protocol 2 writes Python 2 `str` (the legacy format's keys) as bytes.
                let v = if matches!(op, b'T' | b'U') {
                    Value::Str(String::from_utf8_lossy(&s).into_owned())
                } else {
                    Value::Bytes(s)
                };
                self.push(v)
            }
            _ => return Err(format!("the pickle is malformed (opcode 0x{op:02x})")),
        }
        Ok(())
    }

    /// The memo: values kept by index and fetched again.
    fn memo_op(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'q' => {
                let k = self.uint(1)? as u32;
                self.memo_put(k)?
            }
            b'r' => {
                let k = self.uint(4)? as u32;
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.uint(1)? as u32;
                self.memo_get(k)?
            }
            b'j' => {
                let k = self.uint(4)? as u32;
                self.memo_get(k)?
            }
            _ => return Err(format!("the pickle is malformed (opcode 0x{op:02x})")),
        }
        Ok(())
    }

    /// Globals, storages and the calls that rebuild tensors and ordered dicts.
    fn call(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(&module, &name)?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                    _ => return Err("the pickle is malformed (global name)".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent(pid)?;
                self.push(storage)
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = reduce(f, args)?;
                self.push(v)
            }
            b'b' => {
                // State set on an object: an ordered dict's `_metadata`, a parameter's
                // attributes. Plain data only; nothing to keep.
                let state = self.pop()?;
                if contains_global(&state) {
                    return Err(refused("an object's state holding a global"));
                }
            }
            b'\x81' => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = reduce(cls, args)?;
                self.push(v)
            }

            _ => return Err(format!("the pickle is malformed (opcode 0x{op:02x})")),
        }
        Ok(())
    }

    /// Tuples, lists and dicts built from the stack.
    fn container(&mut self, op: u8) -> Result<(), String> {
        match op {
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(items))
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                self.push(Value::Tuple(items))
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Value::List(items))
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.push(Value::Dict(pairs))
            }
            b'a' => {
                let v = self.pop()?;
                match self.top()? {
                    Value::List(l) => l.push(v),
                    _ => return Err("the pickle appends to a non-list".into()),
                }
            }
            b'e' => {
                let items = self.pop_mark()?;
                match self.top()? {
                    Value::List(l) => l.extend(items),
                    _ => return Err("the pickle appends to a non-list".into()),
                }
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                set_items(self.top()?, vec![(k, v)])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                let p = pairs(items)?;
                set_items(self.top()?, p)?
            }
            other => {
                return Err(format!(
                    "the pickle uses opcode 0x{other:02x}, which a state dict never needs; \
                     refused"
                ));
            }
        }
        Ok(())
    }

    fn long(&mut self, n: usize) -> Result<i64, String> {
        if n > 8 {
            return Err("the pickle holds an integer too large for a tensor shape".into());
        }
        let s = self.take(n)?;
        let mut v: i64 = 0;
        for (i, b) in s.iter().enumerate() {
            v |= i64::from(*b) << (8 * i);
        }
        if n > 0 && n < 8 && s[n - 1] & 0x80 != 0 {
            v -= 1i64 << (8 * n);
        }
        Ok(v)
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("the pickle is malformed (odd dict items)".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>) -> Result<(), String> {
    match target {
        Value::Dict(d) => {
            d.extend(items);
            Ok(())
        }
        _ => Err("the pickle sets items on a non-dict".into()),
    }
}

fn contains_global(v: &Value) -> bool {
    match v {
        Value::Global(_) => true,
        Value::List(l) | Value::Tuple(l) => l.iter().any(contains_global),
        Value::Dict(d) => d
            .iter()
            .any(|(k, v)| contains_global(k) || contains_global(v)),
        _ => false,
    }
}

fn as_usize(v: &Value) -> Result<usize, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        _ => Err("the pickle's tensor has a malformed shape".into()),
    }
}

fn usizes(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(t) | Value::List(t) => t.iter().map(as_usize).collect(),
        _ => Err("the pickle's tensor has a malformed shape".into()),
    }
}

/// `('storage', StorageType, key, location, numel[, view])` → a storage reference.
fn persistent(pid: Value) -> Result<Value, String> {
    let Value::Tuple(t) = pid else {
        return Err("the pickle's storage reference is malformed".into());
    };
    match t.as_slice() {
        [Value::Str(tag), Value::Global(ty), key, _location, len, ..] if tag == "storage" => {
            let dtype = storage_dtype(ty).ok_or_else(|| refused(ty))?;
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                _ => return Err("the pickle's storage key is malformed".into()),
            };
            Ok(Value::Storage {
                dtype,
                key,
                len: as_usize(len)? as u64,
            })
        }
        _ => Err("the pickle's storage reference is malformed".into()),
    }
}

fn reduce(f: Value, args: Value) -> Result<Value, String> {
    let Value::Global(name) = f else {
        return Err(refused("a non-global callable"));
    };
    let Value::Tuple(args) = args else {
        return Err("the pickle is malformed (call arguments)".into());
    };
    match name.as_str() {
        "collections.OrderedDict" => match args.into_iter().next() {
            None => Ok(Value::Dict(vec![])),
            Some(Value::List(items)) => {
                let mut out = Vec::new();
                for it in items {
                    match it {
                        Value::Tuple(kv) if kv.len() == 2 => {
                            let mut kv = kv.into_iter();
                            if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                                out.push((k, v));
                            }
                        }
                        _ => return Err("the pickle's ordered dict is malformed".into()),
                    }
                }
                Ok(Value::Dict(out))
            }
            Some(Value::Dict(d)) => Ok(Value::Dict(d)),
            Some(_) => Err("the pickle's ordered dict is malformed".into()),
        },
        "torch._utils._rebuild_tensor" | "torch._utils._rebuild_tensor_v2" => {
            let [storage, offset, shape, stride, ..] = args.as_slice() else {
                return Err("the pickle's tensor is malformed".into());
            };
            let Value::Storage { dtype, key, len } = storage else {
                return Err("the pickle's tensor has no storage".into());
            };
            let shape = usizes(shape)?;
            let stride = usizes(stride)?;
            if shape.len() != stride.len() {
                return Err("the pickle's tensor has a malformed stride".into());
            }
            Ok(Value::Tensor(TensorRef {
                dtype: *dtype,
                storage: key.clone(),
                storage_len: *len,
                offset: as_usize(offset)? as u64,
                shape,
                stride,
            }))
        }
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            match args.into_iter().next() {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => Err("the pickle's parameter is malformed".into()),
            }
        }
        other => Err(refused(other)),
    }
}
